# Built by scripts/build-native.mjs (`node-gyp rebuild --directory native`).
# Outputs build/Release/branching.node and, on Linux, build/Release/branching-launcher.
{
  'targets': [
    {
      'target_name': 'branching',
      'sources': ['branching.cc', 'tree.cc'],
      # The loader compares it with the package's version to tell a stale binary (see src/binaries.ts).
      'defines': ['BRANCHING_VERSION=<!(node -p "require(\'../package.json\').version")'],
      'dependencies': ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      'cflags': ['-Wall', '-Wextra', '-Werror'],
      'cflags_cc': ['-Wall', '-Wextra', '-Werror'],
      'xcode_settings': {
        'GCC_ENABLE_CPP_EXCEPTIONS': 'YES',
        'OTHER_CFLAGS': ['-Wall', '-Wextra', '-Werror'],
      },
    },
  ],
  'conditions': [
    ['OS=="linux"', {
      'targets': [
        {
          'target_name': 'branching-launcher',
          'type': 'executable',
          'sources': ['launcher.c', 'mount-helper.c', 'mounts.c', 'pidns.c'],
          'cflags': ['-Wall', '-Wextra', '-Werror', '-std=gnu11', '-O2'],
          'cflags!': ['-fno-exceptions'],
          'ldflags!': ['-rdynamic'],
        },
      ],
    }],
  ],
}
