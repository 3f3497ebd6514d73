"""Scenario files: what one benchmark measures, described once for every backend.

``model`` is the pydantic model and the one import point for its parts (pure: like
``workloads``, ``options``, ``constraints`` and ``fields`` it knows nothing of backends or the
runner), ``safeyaml`` parses untrusted YAML within bounds, ``loader`` reads files and checks
backend names against the registry, ``errors`` turns validation errors into file/line/field
messages.
"""
