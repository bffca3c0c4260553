# workerd serving ws.js for benches/ws_load.py, which overrides the listening address with
# `--socket-addr http=127.0.0.1:PORT`.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "main", worker = .echo)],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "main")],
);

const echo :Workerd.Worker = (
  modules = [(name = "ws.js", esModule = embed "ws.js")],
  compatibilityDate = "2024-09-23",
);
