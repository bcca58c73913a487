"""The face-data layer, torch-free: loaders for the datasets' own formats, the manifests
and the decoded cache, the checks of `mtl-sweep data check`, source resolution, and the
synthetic face generator that writes those formats.

It imports only `mtl_core`; both the orchestrator (planning, `data` commands, the driver's
checks) and the trainables (batches, training) import it. Import the module that owns a
name: `from mtl_data.cache import load_split`.
"""
