"""How nuclei.keras was made: a tiny fully convolutional net trained briefly on synthetic blobs.

Run from this folder: `python train.py` (seeded; about 30 s on a laptop CPU). The model is a stand-in for a real
nuclei segmentation network: small enough to ship in the repository, trained enough to give non-trivial output.
"""

from __future__ import annotations

import numpy as np


def synthetic_tiles(count: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """BGR tiles in [0, 1] with bright round 'nuclei' on a noisy background, and their one-hot masks."""
    yy, xx = np.mgrid[0:size, 0:size]
    images = rng.normal(0.15, 0.05, size=(count, size, size, 3))
    masks = np.zeros((count, size, size), dtype=bool)
    for index in range(count):
        for _ in range(rng.integers(3, 8)):
            cy, cx, radius = rng.integers(0, size), rng.integers(0, size), rng.integers(3, 8)
            blob = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
            masks[index] |= blob
            images[index][blob] += rng.uniform(0.4, 0.7) * np.array([0.9, 0.6, 0.3])
    images = np.clip(images, 0.0, 1.0).astype(np.float32)
    one_hot = np.stack([~masks, masks], axis=-1).astype(np.float32)
    return images, one_hot


def main() -> None:
    import keras

    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    images, masks = synthetic_tiles(96, 64, rng)
    inputs = keras.Input((None, None, 3), name="input")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(2, 1, activation="softmax", name="scores")(x)
    model = keras.Model(inputs, outputs, name="nuclei")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    model.fit(images, masks, epochs=15, batch_size=16, verbose=0)
    # A fresh, uncompiled copy: the file then holds the weights only, not the optimizer state.
    shipped = keras.models.clone_model(model)
    shipped.set_weights(model.get_weights())
    shipped.save("nuclei.keras")


if __name__ == "__main__":
    main()
