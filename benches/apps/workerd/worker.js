// The stretch comparison for benches/http.py: the same hello as wexec's, on Cloudflare's workerd.
export default {
  fetch(request) {
    return Response.json({ message: "hello" });
  },
};
