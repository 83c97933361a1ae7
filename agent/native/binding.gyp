{
  "targets": [
    {
      "target_name": "fast_io",
      "sources": ["fast-io.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
