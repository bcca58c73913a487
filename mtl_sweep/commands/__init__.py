"""The `mtl-sweep` command line: `main` (the group, run and the error boundary), `plan`,
`report` and `data`. Each command resolves config at this boundary and calls the pipeline
with plain values."""
