{
  "variables": {
    "sanitize%": "false"
  },
  "targets": [
    {
      "target_name": "ostree_sysext",
      "sources": [
        "native/addon.cc",
        "native/args.cc",
        "native/cancel.cc",
        "native/checkout.cc",
        "native/commit.cc",
        "native/commit-walk.cc",
        "native/error.cc",
        "native/fsck.cc",
        "native/objects.cc",
        "native/overlay.cc",
        "native/prune.cc",
        "native/pull.cc",
        "native/query.cc",
        "native/remote.cc",
        "native/repo.cc",
        "native/sign.cc",
        "native/sysroot.cc",
        "native/variant.cc",
        "native/worker.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(pkg-config --cflags-only-I ostree-1 | sed -e 's/-I//g')"
      ],
      "libraries": ["<!@(pkg-config --libs ostree-1)"],
      "defines": ["NAPI_VERSION=9", "NAPI_CPP_EXCEPTIONS", "G_LOG_DOMAIN=\"ostree-sysext\""],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "conditions": [
        ["sanitize=='true'", {
          "cflags_cc": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g", "-O1"],
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ]
    }
  ]
}
