"""The report's data model, at the bottom of the package: every report module imports these
modules, and they import no other report module.

- `base`: constants, statistics over seeds, the comparison tables, the task groupings;
- `fronts`, `tuning`, `findings`: each analysis's own data, over `base`;
- `report`: the `Report`, the analysis of one sweep, whole;
- `document`: what every format shows (sections, display tables, cells, figures).

Import the module that owns a name: `from mtl_sweep.report.model.base import Row`.
"""
