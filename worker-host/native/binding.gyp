{
  "targets": [
    {
      "target_name": "flurry_pager",
      "sources": ["src/flurry_pager.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-std=c11", "-Wall", "-pthread"],
      "ldflags": ["-pthread"],
      "configurations": {
        "Release": {
          "cflags!": ["-O3"],
          "cflags": ["-O2"]
        }
      }
    }
  ]
}
