"""gamma-detect: tell whether an image was made by AI, and where.

The top-level folders of the repository install as sub-packages of this one
(`gamma_detect.train`, `gamma_detect.export`, `gamma_detect.server`,
`gamma_detect.models`) so that nothing collides with other distributions.
"""

__version__ = "0.2.1"
