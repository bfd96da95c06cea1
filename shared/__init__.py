"""Code every AegisMatrix service shares, in layers (docs/ARCHITECTURE.md has the map):
``config`` and ``logs`` at the root; ``contract`` (messages, codec, blocks, the document),
``market`` (calendar, clock, validation), ``features``, ``signals`` and ``models`` are pure;
``bus`` (streams, publishing, the worker loop, engines, lifecycle), ``redis_ops`` (the server,
ACL users, the memory alarm) and ``history`` (the store) do I/O."""
