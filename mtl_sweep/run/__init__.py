"""`mtl-sweep run`: the requests handed to trials (`requests`), the Tune searcher that
respects pretraining dependencies (`searcher`), the live progress line (`progress`) and the
driver that ties them together (`runner`)."""
