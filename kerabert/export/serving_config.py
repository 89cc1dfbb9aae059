"""TF Serving deployment files beside the model folders: `models.config`, batching.

`<root>/models.config` is a `model_config_list` text proto naming every model folder
under `<root>` that holds a SavedModel version, with its path as the container sees
it (`/models/<name>` when `<root>` is mounted at `/models`);
`<root>/batching_parameters.txt` is the server-side batching configuration for
`--enable_batching`. Both are rewritten from the layout after each SavedModel export
(written to a temporary file, then renamed), so they always list what is there.

```bash
docker run -p 8501:8501 -v "$PWD/savedmodels:/models" tensorflow/serving:VERSION \
    --model_config_file=/models/models.config \
    --enable_batching --batching_parameters_file=/models/batching_parameters.txt
```
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from kerabert.export import layout

CONFIG_FILE = "models.config"
BATCHING_FILE = "batching_parameters.txt"
MOUNT = "/models"
# The batch sizes the server pads batches to; the warmup requests use the same sizes.
BATCH_SIZES = (1, 8, 32)


def served_models(root):
    """The model names under `root` with at least one SavedModel version, sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        path.name for path in root.iterdir()
        if path.is_dir() and not path.name.startswith(".") and any(
            (path / str(v) / "saved_model.pb").is_file() for v in layout.versions(path))
    )


def model_config(names, mount=MOUNT):
    """The `model_config_list` text proto for `names` mounted under `mount`."""
    entries = "".join(
        f'  config {{\n    name: "{name}"\n    base_path: "{mount}/{name}"\n'
        '    model_platform: "tensorflow"\n  }\n' for name in names)
    return f"model_config_list {{\n{entries}}}\n"


def batching_parameters(batch_sizes=BATCH_SIZES, timeout_micros=2000, threads=4):
    """The batching text proto: batches padded up to the next allowed size.

    Args:
        batch_sizes: allowed batch sizes, increasing; the largest is `max_batch_size`.
        timeout_micros: how long the server waits to fill a batch.
        threads: batch threads: about the server's cores (not known at export).
    """
    allowed = "".join(f"allowed_batch_sizes: {size}\n" for size in batch_sizes)
    # Token-id inputs differ in length between requests: pad them to one batch.
    return (f"max_batch_size {{ value: {batch_sizes[-1]} }}\n"
            f"batch_timeout_micros {{ value: {timeout_micros} }}\n"
            f"max_enqueued_batches {{ value: 100 }}\n"
            f"num_batch_threads {{ value: {threads} }}\n"
            f"{allowed}pad_variable_length_inputs: true\n")


def docker_command(root, mount=MOUNT, image="tensorflow/serving"):
    """The `docker run` line that serves `root` with these files."""
    return (f'docker run -p 8500:8500 -p 8501:8501 -v "{Path(root).resolve()}:{mount}" '
            f"{image} --model_config_file={mount}/{CONFIG_FILE} --enable_batching "
            f"--batching_parameters_file={mount}/{BATCHING_FILE}")


def _write_text(path, text):
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def write(root, mount=MOUNT, batch_sizes=BATCH_SIZES):
    """Write `models.config` and `batching_parameters.txt` into `root`.

    Returns:
        `{file: path}` of the two files.

    Example:
    ```python
    write("savedmodels")  # savedmodels/models.config, savedmodels/batching_parameters.txt
    ```
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    config, batching = root / CONFIG_FILE, root / BATCHING_FILE
    _write_text(config, model_config(served_models(root), mount))
    _write_text(batching, batching_parameters(batch_sizes))
    return {CONFIG_FILE: config, BATCHING_FILE: batching}
