"""Database helpers the apps share: no models, no app imports (a leaf, checked by import-linter)."""
