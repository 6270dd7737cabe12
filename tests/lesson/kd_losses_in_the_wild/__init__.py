"""Real-world knowledge-distillation losses, re-expressed in our own words, with their expected conventions.

Two corpora, each entry a loss from a public project (its source: repository, path and commit where known)
in the signature ``loss_fn(student_logits, teacher_logits, labels, T, alpha)``, with the value of every field
of ``kdutils.conventions.diagnose``'s result that its code decides (several accepted values where two labels
are defensible; a field left out where it does not apply):

- ``corpus_a``: 71 losses from 37 projects. It was written while the diagnoser was being written, without
  seeing it, and then served to improve it: a development set.
- ``corpus_b``: 60 losses from 30 projects, none a duplicate of corpus A's, written by someone who had seen
  neither the diagnoser nor its scores; the diagnoser was scored on it once, unchanged, as issue 27's
  acceptance test. Two of its losses raise on every input (only the report of the error is checked).

No code was copied: each function restates what the original computes, mapped onto the signature above
(each entry's ``mapping`` says how: which of the original's weights became ``alpha``, how token losses
became one token per row, ...).
"""
