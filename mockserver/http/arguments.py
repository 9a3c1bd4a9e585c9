"""A handler's keyword arguments from a validated request: path parameters, query parameters with their
defaults, and the body, each cast to its declared type.

The rules are Connexion's (its default, non-pythonic names), worked out once per operation instead of once per
request; the compiled pipeline uses them, Connexion's own chain uses Connexion's, and
tests/mockserver/test_pipeline.py holds the two to the same answers. No operation here takes file uploads.
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
import typing as t

from connexion.utils import deep_merge, is_null, is_nullable, make_type

#: what Connexion reads as a form body
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

_OPEN_BRACKET = re.compile(r"\[(?!])")
_NOT_WORD = re.compile(r"[^0-9a-zA-Z_]")
_LEADING = re.compile(r"^[^a-zA-Z_]+")


@functools.lru_cache(maxsize=4096)
def argument_name(name: str) -> str:
    """A parameter's name as a Python argument: ``a[b]`` becomes ``a_b``, other characters that cannot be in a
    name are dropped, and so is whatever precedes the first letter or underscore."""
    if not name:
        return name
    return _LEADING.sub("", _NOT_WORD.sub("", _OPEN_BRACKET.sub("_", name)))


def signature(function: t.Callable[..., t.Any]) -> tuple[list[str], bool]:
    """The names a handler takes by keyword, and whether it takes ``**kwargs`` (decorators unwrapped)."""
    parameters = inspect.signature(inspect.unwrap(function)).parameters.values()
    names = [p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return names, any(p.kind is p.VAR_KEYWORD for p in parameters)


def cast(value: t.Any, definition: t.Mapping[str, t.Any]) -> t.Any:
    """``value`` as the type its parameter (or property) definition declares; a nullable null is None."""
    schema = definition.get("schema", definition)
    if is_nullable(schema) and is_null(value):
        return None
    if schema["type"] == "array":
        items = schema["items"]
        return [make_type(part, items["type"], items.get("format")) for part in value]
    return make_type(value, schema["type"], schema.get("format"))


def query_defaults(definitions: t.Mapping[str, t.Mapping[str, t.Any]]) -> dict[str, t.Any]:
    """Each query parameter's default: its own, or its schema's (an object's from its properties' defaults)."""
    defaults: dict[str, t.Any] = {}
    for name, definition in definitions.items():
        schema = definition.get("schema")
        if "default" in definition:
            defaults[name] = definition["default"]
        elif schema is None or "type" not in schema:
            continue  # as Connexion: an untyped schema's default is not applied
        elif schema["type"] == "object":
            defaults[name] = copy.deepcopy(schema["default"]) if "default" in schema else _object_default(schema)
        elif "default" in schema:
            defaults[name] = schema["default"]
    return defaults


def _object_default(schema: t.Mapping[str, t.Any], into: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
    result: dict[str, t.Any] = {} if into is None else into
    for name, prop in schema.get("properties", {}).items():
        if "default" in prop and name not in result:
            result[name] = copy.copy(prop["default"])
        elif prop.get("type") == "object" and "properties" in prop:
            result[name] = _object_default(prop, result.setdefault(name, {}))
    return result


class Arguments:
    """Builds one operation's handler arguments."""

    def __init__(self, operation: t.Any, names: list[str], has_kwargs: bool) -> None:
        self.operation = operation
        self.names = names
        self.has_kwargs = has_kwargs
        self.path_definitions = {p["name"]: p for p in operation.parameters if p["in"] == "path"}
        self.query_definitions = {p["name"]: p for p in operation.parameters if p["in"] == "query"}
        self.defaults = query_defaults(self.query_definitions)
        # Scalar defaults need no copy per request.
        self.copy_defaults = not all(isinstance(v, (str, int, float, bool, type(None))) for v in self.defaults.values())
        # TRACE requests carry no body (RFC 9110 9.3.8); neither does an operation that declares none.
        self.body_defined = operation.method.upper() != "TRACE" and operation.is_request_body_defined
        self._body_names: dict[str, str] = {}
        self._body_schemas: dict[str, dict[str, t.Any]] = {}

    def wanted(self, name: str) -> bool:
        return self.has_kwargs or name in self.names

    def build(self, path_params: dict, query_params: dict, body: t.Any, media_type: str) -> dict[str, t.Any]:
        """The keyword arguments for resolved path and query parameters, a parsed body and its media type."""
        result: dict[str, t.Any] = {}
        for name, value in path_params.items():
            definition = self.path_definitions.get(name)
            result[argument_name(name)] = value if definition is None else cast(value, definition)
        merged = copy.deepcopy(self.defaults) if self.copy_defaults else dict(self.defaults)
        for name, value in deep_merge(merged, query_params).items():
            definition = self.query_definitions.get(name)
            key = argument_name(name)
            if definition is not None and self.wanted(key):
                result[key] = cast(value, definition)
        if self.body_defined and (self.names or self.has_kwargs):
            key = self._body_name(media_type)
            if self.wanted(key):
                result[key] = self._body(body, media_type)
        return result

    def _body_name(self, media_type: str) -> str:
        name = self._body_names.get(media_type)
        if name is None:
            name = self._body_names[media_type] = argument_name(self.operation.body_name(media_type))
        return name

    def body_schema(self, media_type: str | None) -> dict[str, t.Any]:
        key = media_type or ""
        schema = self._body_schemas.get(key)
        if schema is None:
            if len(self._body_schemas) >= 64:  # clients choose media types; keep the memory bounded
                self._body_schemas.clear()
            schema = self._body_schemas[key] = self.operation.body_schema(media_type)
        return schema

    def _body(self, body: t.Any, media_type: str) -> t.Any:
        schema = self.body_schema(media_type)
        if media_type in FORM_TYPES:
            return self._form(body, schema)
        if is_nullable(schema) and is_null(body):
            return None  # a null the schema allows stays null rather than becoming the default
        if body is None:
            return copy.deepcopy(schema.get("default", {}))
        return body

    def _form(self, body: dict | None, schema: dict[str, t.Any]) -> dict[str, t.Any]:
        """The form's fields over the schema's default, each cast to its property's type."""
        properties = {name: {"schema": prop} for name, prop in schema.get("properties", {}).items()}
        # OpenAPI allows additional properties unless told otherwise; Connexion asks the first media type's schema.
        additional = self.body_schema(None).get("additionalProperties", True)
        fields = copy.deepcopy(schema.get("default", {}))
        fields.update(body or {})
        if not (properties or additional):
            return {}
        result = {}
        for name, value in fields.items():
            try:
                result[name] = cast(value, properties[name])
            except KeyError:
                # Not a declared property (or one without a type): kept as it came, unless none may be added.
                if not additional:
                    continue
                result[name] = cast(value, {"schema": additional}) if isinstance(additional, dict) else value
        return result
