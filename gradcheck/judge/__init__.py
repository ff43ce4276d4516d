"""The judge: every verdict on analytic against numeric values is taken here, by one rule (``verdict``).

- ``verdict``: the element-wise classification pass / fail / kink and the outcome of a comparison;
- ``nodes``: each node's gradient, element by element (full) or by directional probes;
- ``local``: one op's vjp edge in isolation (is this op the origin of a wrong gradient?);
- ``suspects``: the ops whose own gradient is right while what they pass on is not;
- ``jvp``: forward-mode rules against finite differences of the op alone;
- ``expect``: the values a spec pins under ``expect:``.
"""
from .options import CheckOptions

__all__ = ["CheckOptions"]
