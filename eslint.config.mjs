// Lint for lib/, test/, bench/ and examples/: eslint's and typescript-eslint's recommended rules,
// with the few this code base deliberately departs from turned off and said why.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'native/**', 'node_modules/**', '.tap/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // Tests and hostile-input checks pass deliberately wrong types through `as never`/`any`.
      '@typescript-eslint/no-explicit-any': 'off',
      // `_`-prefixed names mark a parameter a signature needs but the body does not use.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Tests require node: modules lazily inside a test (a mode may be absent on a machine).
      '@typescript-eslint/no-require-imports': 'off',
      // CLI output tests match column layouts; literal spaces show the layout as printed.
      'no-regex-spaces': 'off',
    },
  },
)
