"""wexec: scripts as HTTP endpoints, each run inside a WebAssembly sandbox."""
