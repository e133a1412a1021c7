{
  "targets": [
    {
      "target_name": "svcplane",
      "sources": [
        "native/addon/addon.cc",
        "native/addon/tun.cc",
        "native/addon/sharded.cc",
        "native/addon/handoff.cc",
        "native/bridge/validate.cc",
        "native/bridge/update_batch.cc",
        "<!@(node -p \"require('fs').readdirSync('native/core').filter(f => f.endsWith('.cc')).map(f => 'native/core/' + f).join(' ')\")"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native",
        "include"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-O2", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++1y", "-fno-rtti"],
      "cflags": ["-O3", "-fvisibility=hidden"],
      "cflags_cc": ["-std=c++20", "-O3", "-fvisibility=hidden", "-fno-exceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++20",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "OTHER_CPLUSPLUSFLAGS": ["-O3"]
      }
    }
  ]
}
