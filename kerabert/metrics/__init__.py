"""Task metrics computed on decoded predictions (entity-level F1, SQuAD EM/F1)."""
