#!/usr/bin/env python3
"""Real clients against a running `zimage serve` (demo model): the `openai` package's
images.generate in both response formats, and `webuiapi`'s txt2img with the seeds read back from
`info`. Usage: test_clients.py http://127.0.0.1:PORT [API_KEY]. Exits non-zero on any failure."""
import base64
import io
import sys
import urllib.parse
import urllib.request

import openai
import webuiapi
from PIL import Image

url = sys.argv[1].rstrip("/")
key = sys.argv[2] if len(sys.argv) > 2 else None
parsed = urllib.parse.urlparse(url)


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return Image.open(io.BytesIO(data)).size


# OpenAI: b64_json and url.
client = openai.OpenAI(base_url=f"{url}/v1", api_key=key or "not-needed")
result = client.images.generate(model="z-image-turbo", prompt="a red fox in the snow", size="256x192", n=2,
                                response_format="b64_json")
assert len(result.data) == 2, result
for item in result.data:
    assert png_size(base64.b64decode(item.b64_json)) == (256, 192)
result = client.images.generate(prompt="a lighthouse at dusk", size="128x128", response_format="url")
request = urllib.request.Request(result.data[0].url, headers={"Authorization": f"Bearer {key}"} if key else {})
assert png_size(urllib.request.urlopen(request).read()) == (128, 128)
models = client.models.list()
assert any(m.id for m in models.data), models
print("openai: images.generate b64_json and url, models.list: ok")

# webuiapi (AUTOMATIC1111 API client), with its SD-era defaults.
api = webuiapi.WebUIApi(host=parsed.hostname, port=parsed.port)
if key:
    api.set_auth("user", key)
result = api.txt2img(prompt="a fox, watercolor", negative_prompt="blurry", seed=1234, width=128, height=128,
                     batch_size=2)
assert len(result.images) == 2, result.images
assert result.info["seed"] == 1234, result.info
assert result.info["all_seeds"] == [1234, 1235], result.info["all_seeds"]
assert all(image.size == (128, 128) for image in result.images)
assert "Seed: 1234" in result.info["infotexts"][0]
assert result.parameters["steps"] == 8, result.parameters   # the SD defaults became Turbo's
print("webuiapi: txt2img with seeds from info: ok")
samplers = api.get_samplers()
assert samplers and samplers[0]["name"] == "Euler", samplers
print("webuiapi: samplers, options:", api.get_options()["sd_model_checkpoint"])
