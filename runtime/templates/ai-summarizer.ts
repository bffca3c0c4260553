// @ai true
// @description Summarises text in at most {{maxWords}} words with the built-in AI
const body = req.body;
const text = typeof body === 'string' ? body : body?.text ?? metadata.query.text;
if (typeof text !== 'string' || text.trim() === '') {
  return res.status(400).json({
    error: 'nothing to summarise: send {"text": "..."} as JSON, a text/plain body, or ?text=',
  });
}
const { text: summary, usage } = await generateText({
  model,
  system: 'You summarise the text you are given in at most {{maxWords}} words. Answer with the summary only.',
  prompt: text,
});
return { summary, usage };
