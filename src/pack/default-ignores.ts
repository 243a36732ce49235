/**
 * What `khd run` never sends, before `.nsmlignore` is read (so `.nsmlignore` can re-include any
 * of it with `!pattern`). Shown by `khd run --show-default-nsmlignore`.
 */
export const DEFAULT_NSMLIGNORE: readonly string[] = [
  '# version control',
  '.git/',
  '.hg/',
  '.svn/',
  '# Python caches and builds',
  '__pycache__/',
  '*.py[cod]',
  '.pytest_cache/',
  '.mypy_cache/',
  '.ruff_cache/',
  '.ipynb_checkpoints/',
  '*.egg-info/',
  '# virtual environments',
  '.venv/',
  'venv/',
  'env/',
  '.conda/',
  '# JavaScript dependencies',
  'node_modules/',
  '# editors and OS files',
  '.idea/',
  '.vscode/',
  '*.swp',
  '*~',
  '.DS_Store',
  'Thumbs.db',
  '# local checkpoints written by the nsml runtime off the platform',
  '.nsml/',
];

export const NSMLIGNORE_FILE = '.nsmlignore';
