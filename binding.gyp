{
  "targets": [
    {
      "target_name": "maio",
      "sources": [
        "native/addon.c",
        "native/napi_util.c",
        "native/syscall.c",
        "native/probe.c",
        "native/layout.c",
        "native/loop.c",
        "native/ring.c",
        "native/pool.c",
        "native/sock.c",
        "native/fallback.c",
        "native/pipe.c",
        "native/sendfile.c",
        "native/udp.c",
        "native/affinity.c",
        "native/reuseport.c"
      ],
      "include_dirs": ["native"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
