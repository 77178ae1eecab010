// Lint rules for mfc. Each rule is here because it catches a real bug class, not for taste;
// the reasons are in docs/lint-rules.md. Zero warnings: a rule is either an error or absent.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const typed = {
  // Promises: an unawaited or misplaced promise loses errors (unhandled rejection kills serve).
  '@typescript-eslint/no-floating-promises': 'error',
  '@typescript-eslint/no-misused-promises': 'error',
  '@typescript-eslint/await-thenable': 'error',
  '@typescript-eslint/prefer-promise-reject-errors': 'error',
  '@typescript-eslint/only-throw-error': 'error',
  // Strings: "[object Object]" or "a,b" in a user-facing message or a log line.
  // ws hands over Buffers (binaryType 'nodebuffer', its default, never changed here); its RawData
  // type also lists ArrayBuffer for the other binaryTypes, hence the one extra name.
  '@typescript-eslint/no-base-to-string': ['error', {ignoredTypeNames: ['Error', 'RegExp', 'URL', 'URLSearchParams', 'ArrayBuffer']}],
  '@typescript-eslint/restrict-template-expressions': ['error', {allowNumber: true, allowBoolean: true, allowNullish: true}],
  // `this` lost when a method is passed as a callback.
  '@typescript-eslint/unbound-method': 'error',
  '@typescript-eslint/no-implied-eval': 'error',
}

export default tseslint.config(
  {ignores: ['dist/**', 'node_modules/**']},
  {linterOptions: {reportUnusedDisableDirectives: 'error'}},
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base, tseslint.configs.eslintRecommended],
    languageOptions: {
      // One program for src, test and bench (test/tsconfig.json includes all three) and one for
      // the browser code: both already exist for `tsc`, so linting adds no second copy of them.
      parserOptions: {project: ['./test/tsconfig.json', './src/dashboard/tsconfig.json'], tsconfigRootDir: import.meta.dirname},
    },
    rules: {
      ...typed,
      'no-unused-vars': 'off',
      '@typescript-eslint/no-unused-vars': ['error', {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none'}],
      '@typescript-eslint/no-unused-expressions': 'error',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {globals: {process: 'readonly', console: 'readonly', URL: 'readonly'}},
  },
  {
    rules: {
      // An empty catch is this code base's spelled-out "ignore": best-effort kill, optional JSON.
      'no-empty': ['error', {allowEmptyCatch: true}],
      // `let x` read by a closure before its one assignment (serve-process.ts) cannot be const.
      'prefer-const': ['error', {ignoreReadBeforeAssign: true}],
    },
  },
)
