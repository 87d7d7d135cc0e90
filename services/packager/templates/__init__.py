"""The serving templates: one BentoML service module per task, and their helpers.

This package is copied into every bento as ``bentomesh_templates`` and must run without BentoMesh
installed: it imports only BentoML, numpy, pydantic and the model libraries, and its modules
import each other relatively. What varies per model is read at import time from
``service.json`` (written beside these modules in the build context) and from the model's
stored ``bentomesh.json``; no source is generated.
"""
