"""SynthAffect is learnable but not trivial: a linear model on pixels, tested on unseen identities.

Ridge regression (numpy closed form) on 24x24 grayscale face crops (the face box made square, as the image
processor does) is trained on 30 identities and tested on 10 others. Valence must come out clearly above
chance, so the expression really is in the pixels, and clearly below 0.9, so the identity-dependent mapping,
pose, lighting, background and noise leave real work for MT-CLAR.
"""

import numpy as np
from PIL import Image

from mtclar_hf.data.synth import _identity_seed, render_still
from mtclar_hf.metrics import ccc

CROP = 24
IMAGE_SIZE = 64
RIDGE = 3.0  # 1 and 10 give valence CCC 0.26 and 0.31 on the same split


def face_crops(identity_indices, count, first_image):
    pixels, valence, arousal = [], [], []
    for i in range(count):
        sample = render_still(
            _identity_seed(0, identity_indices[i % len(identity_indices)]), first_image + i, image_size=IMAGE_SIZE
        )
        x, y, w, h = sample["face_box"]
        half, cx, cy = max(w, h) / 2, x + w / 2, y + h / 2
        crop = Image.fromarray(sample["image"]).convert("L").crop((cx - half, cy - half, cx + half, cy + half))
        pixels.append(np.asarray(crop.resize((CROP, CROP), Image.Resampling.BOX), dtype=np.float64).ravel() / 255)
        valence.append(sample["valence"])
        arousal.append(sample["arousal"])
    return np.array(pixels), np.array(valence), np.array(arousal)


def ridge_fit_predict(train_x, train_y, test_x, strength):
    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    z_train, z_test = (train_x - mean) / std, (test_x - mean) / std
    gram = z_train.T @ z_train + strength * np.eye(z_train.shape[1])
    weights = np.linalg.solve(gram, z_train.T @ (train_y - train_y.mean()))
    return z_test @ weights + train_y.mean(), z_train @ weights + train_y.mean()


def test_linear_model_on_pixels_is_clearly_positive_but_far_from_perfect_on_new_identities():
    train_x, train_v, train_a = face_crops(list(range(30)), 600, first_image=0)
    test_x, test_v, test_a = face_crops(list(range(30, 40)), 300, first_image=100_000)
    valence_test, valence_train = ridge_fit_predict(train_x, train_v, test_x, RIDGE)
    arousal_test, _ = ridge_fit_predict(train_x, train_a, test_x, RIDGE)
    valence_ccc, arousal_ccc = ccc(test_v, valence_test), ccc(test_a, arousal_test)
    # Measured here: valence CCC 0.31 on held-out identities (0.81 on the training identities), arousal
    # 0.28; other identity/image draws give valence 0.28-0.39, arousal 0.28-0.39; 1200 training images give
    # ~0.40. On uncropped full frames it is ~0.01: pose and background dominate raw pixels.
    assert 0.15 < valence_ccc < 0.7, valence_ccc
    assert 0.15 < arousal_ccc < 0.7, arousal_ccc
    assert ccc(train_v, valence_train) > valence_ccc + 0.2  # identities generalise imperfectly
