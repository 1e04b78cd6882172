"""Reading what the client sent: JSON, or multipart with `payload_json` and file parts; answering in kind.

discord.py's `json_or_text` compares Content-Type to exactly `application/json` (http.py json_or_text), and
aiohttp's web.json_response appends `; charset=utf-8`, so every JSON answer here is built by `json_reply`.
"""
from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field

from aiohttp import web

_FILES_FIELD = re.compile(r"^files\[(\d+)\]$")


@dataclass
class UploadedFile:
    index: int
    filename: str
    content_type: str | None
    data: bytes


@dataclass
class RequestBody:
    payload: dict = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)

    @property
    def total_upload_bytes(self) -> int:
        return sum(len(f.data) for f in self.files)


def json_reply(body, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})


def error_reply(status: int, code: int, message: str, **extra) -> web.Response:
    return json_reply({"message": message, "code": code, **extra}, status=status)


async def read_body(request: web.Request) -> RequestBody:
    if request.content_type.startswith("multipart/"):
        body = await _read_multipart(request)
    else:
        raw = await request.read()
        body = RequestBody(payload=json.loads(raw) if raw else {})
    # kept for the request log (/_test/requests); bytes are summarised, not logged
    request["logged_body"] = {"payload": body.payload,
                              "files": [{"filename": f.filename, "size": len(f.data)} for f in body.files]}
    return body


async def _read_multipart(request: web.Request) -> RequestBody:
    body = RequestBody()
    reader = await request.multipart()
    order = 0
    while (part := await reader.next()) is not None:
        data = await part.read(decode=False)
        if part.name == "payload_json":
            body.payload = json.loads(data)
        elif part.filename is not None:
            # discord.py names file parts files[N], N = the id in payload_json.attachments; other clients
            # (requests, curl) use any name, and then upload order is the index.
            match = _FILES_FIELD.match(part.name or "")
            index = int(match.group(1)) if match else order
            body.files.append(UploadedFile(index, part.filename, part.headers.get("Content-Type"), bytes(data)))
            order += 1
        elif part.name:
            # plain form fields (content=..., username=...), as a requests.post(data=...) sends them
            body.payload[part.name] = bytes(data).decode()
    return body


def image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        from PIL import Image
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception:
        return None, None
