"""The sweep spec: `schema` (the typed model), `load` (YAML, env vars, --set) and
`validate` (meaning checks that name the key path). Imports neither torch nor ray."""

from mtl_sweep.spec.load import load_spec
from mtl_sweep.spec.schema import Spec

__all__ = ["Spec", "load_spec"]
