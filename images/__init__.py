"""images/ makes images: what task containers are built from, and the code that builds them.

Data: ``env/`` (the Dockerfile templates and the conda-compatible activation shim) and ``suite/``
(the bundled task suite: repository histories as patch series, plus task definitions and rows).
Code: ``build.py`` (the one image builder), ``pull.py`` (prebuilt images from a registry),
``recipes.py`` (environment recipes for rows that have none) and ``mirrors.py`` (where a repository's
git history comes from).

images/ builds on harness/ (a task's image name, in ``harness.image_names``); the harness reads this
package's data through importlib.resources and never imports its code.
"""
