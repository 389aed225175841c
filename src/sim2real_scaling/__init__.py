"""sim2real-scaling: the scaling law of Sim2Real transfer learning for materials properties.

Modules (dependencies point downwards):

- ``cli`` (console script), ``report``, ``plots``
- ``engine`` (trial engine), ``analysis`` modules (``scaling_law``, ``surface``, ``planning``, ``groups``)
- ``ensemble`` (vectorised networks), ``statistics``
- ``data``, ``transforms``, ``descriptors``, ``synthetic``, ``config``, ``io``
"""

__version__ = "0.1.0"
