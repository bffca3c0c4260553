// The stretch comparison for benches/http_load.py: the same hello as wexec's, on Cloudflare's workerd.
export default {
  fetch(request) {
    return Response.json({ message: "hello" });
  },
};
