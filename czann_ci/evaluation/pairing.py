"""Which label file belongs to which image: files, folders and glob patterns expanded, then paired by file
stem (a label file may add ``_labels``, ``.labels`` or ``_mask`` to its image's stem)."""

from __future__ import annotations

import glob
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from czann_ci.errors import ImageError, UsageError
from czann_ci.inference.images import IMAGE_SUFFIXES, image_files

LABEL_SUFFIXES = ("_labels", ".labels", "_mask")


@dataclass(frozen=True)
class ImagePair:
    image: Path
    labels: Path | None


def image_stem(path: Path) -> str:
    """The file name without its image suffix, ``.ome`` included (``a.ome.tif`` -> ``a``)."""
    name = path.name
    if name.lower().endswith(IMAGE_SUFFIXES):
        name = name[: -len(path.suffix)]
        if name.lower().endswith(".ome"):
            name = name[: -len(".ome")]
        return name
    return path.stem


def label_key(path: Path) -> str:
    """The stem of the image a label file belongs to: its own stem less one label suffix."""
    stem = image_stem(path)
    for suffix in LABEL_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def collect_files(paths: Sequence[Path], *, flag: str) -> list[Path]:
    """The files named: a folder stands for the image files directly in it, a quoted glob pattern for
    the files it matches; each file once, in the order given."""
    expanded: list[Path] = []
    for path in paths:
        if not path.exists() and glob.has_magic(str(path)):
            matches = sorted(Path(match) for match in glob.glob(str(path)) if Path(match).is_file())
            if not matches:
                raise UsageError("the pattern matches no file", file=str(path), field=flag)
            expanded += matches
        else:
            expanded.append(path)
    return list(dict.fromkeys(image_files(expanded)))


def pair_images(images: Sequence[Path], labels: Sequence[Path] | None) -> list[ImagePair]:
    """Each image with its label file (None without labels). One image and one label file pair
    directly; otherwise by stem, and an image without labels, or labels without an image, is an error."""
    image_list = collect_files(images, flag="--images")
    if labels is None:
        return [ImagePair(image, None) for image in _distinct(image_list, key=image_stem)]
    label_list = collect_files(labels, flag="--labels")
    # --images and --labels may name the same folder: a file in both lists is a label file when its stem
    # ends with a label suffix, an image otherwise (unless that leaves one list empty: an image that is
    # its own regression reference)
    both = set(image_list) & set(label_list)
    images_only = [path for path in image_list if path not in both or not _labelled(path)]
    labels_only = [path for path in label_list if path not in both or _labelled(path)]
    if images_only and labels_only:
        image_list, label_list = images_only, labels_only
    if len(image_list) == 1 and len(label_list) == 1:
        return [ImagePair(image_list[0], label_list[0])]
    by_key = {label_key(path): path for path in _distinct(label_list, key=label_key)}
    pairs = []
    for image in _distinct(image_list, key=image_stem):
        match = by_key.pop(image_stem(image), None)
        if match is None:
            wanted = ", ".join(image_stem(image) + suffix for suffix in ("", *LABEL_SUFFIXES))
            raise ImageError(
                f"no label file pairs with this image (looked for {wanted} in --labels)",
                file=str(image),
                field="labels",
            )
        pairs.append(ImagePair(image, match))
    if by_key:
        orphan = next(iter(by_key.values()))
        raise ImageError(
            f"no image pairs with this label file (looked for {label_key(orphan)} in --images)",
            file=str(orphan),
            field="images",
        )
    return pairs


def _labelled(path: Path) -> bool:
    """The file's name marks it as a label file."""
    return label_key(path) != image_stem(path)


def _distinct(files: list[Path], *, key: Callable[[Path], str]) -> list[Path]:
    """``files``, refused when two of them pair by the same name."""
    seen: dict[str, Path] = {}
    for path in files:
        name = key(path)
        if name in seen:
            raise ImageError(f"{seen[name]} pairs by the same name {name!r}: rename one", file=str(path))
        seen[name] = path
    return files
