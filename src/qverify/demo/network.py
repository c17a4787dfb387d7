"""The demo's network: a small 1-D CNN over one accelerometer frame (FRAME_LEN x 1 x 1)."""

from __future__ import annotations

from qverify.demo.signals import FRAME_LEN


def Net():  # noqa: N802 - name fixed by the original notebook
    """Build the (untrained) demo network: 8 convs, 4 max-pools, GAP, 3 dense."""
    import keras
    from keras import layers

    inp = keras.Input(shape=(FRAME_LEN, 1, 1), name="input")
    x = inp
    convs = [  # (name, filters, kernel height, pool after?)
        ("conv1", 16, 9, None),
        ("conv2", 16, 9, 16),
        ("conv3", 32, 3, None),
        ("conv4", 32, 3, 4),
        ("conv5", 32, 3, None),
        ("conv6", 32, 3, 4),
        ("conv7", 64, 3, None),
        ("conv8", 64, 3, 4),
    ]
    npool = 0
    for name, filters, k, pool in convs:
        x = layers.Conv2D(filters, (k, 1), padding="valid", name=name)(x)
        x = layers.ReLU(name=f"relu_{name}")(x)
        if pool is not None:
            npool += 1
            x = layers.MaxPool2D((pool, 1), name=f"pool{npool}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(64, name="fc1")(x)
    x = layers.ReLU(name="relu_fc1")(x)
    x = layers.Dense(512, name="fc2")(x)
    x = layers.ReLU(name="relu_fc2")(x)
    x = layers.Dense(1, name="fc3")(x)
    out = layers.Activation("sigmoid", name="sigmoid")(x)
    return keras.Model(inp, out, name="bearing_net")
