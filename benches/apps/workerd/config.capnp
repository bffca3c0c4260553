# workerd serving worker.js. benches/http_load.py overrides the listening address with
# `--socket-addr http=127.0.0.1:PORT`, so the address below is only a default.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "main", worker = .hello)],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "main")],
);

const hello :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed "worker.js")],
  compatibilityDate = "2024-09-23",
);
