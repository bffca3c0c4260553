// @description Echoes the request body back as JSON.
module.exports = (req, res) => res.json({ ok: true, body: req.body });
