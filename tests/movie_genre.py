"""A MovieGenre.csv imitation (the Kaggle poster set's layout), for the eval and training tests."""

from __future__ import annotations

import numpy as np
from PIL import Image


def movie_genre_csv(folder, n_rows=30, n_missing=22):
    """A MovieGenre.csv imitation: its columns, 'calm|tense' genres, latin-1 titles, posters
    named by imdbId, one imdbId twice, one truncated JPEG, rows without a poster (more problems
    than are printed) and an unclosed quote at a late line."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    lines = ["imdbId,Imdb Link,Title,IMDB Score,Genre,Poster URL"]
    for i in range(n_rows):
        genre = "calm" if i % 3 else "calm|tense"
        lines.append(f'{1000 + i},http://x/{i},"Amélie {i}",7.{i % 10},{genre},http://p/{i}.jpg')
        rgb = rng.integers(0, 255, (40, 28, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(folder / f"{1000 + i}.jpg", quality=90)
    truncated = (folder / "1001.jpg").read_bytes()
    (folder / "1001.jpg").write_bytes(truncated[: len(truncated) // 2])
    lines.append('1002,http://x/dup,"Amélie again",7.0,tense,http://p/dup.jpg')  # the same file
    lines += [f"{5000 + i},http://x/m,Missing,6.0,calm,http://p/m.jpg" for i in range(n_missing)]
    lines.append('1003,http://x/q,"Unclosed,7.0,calm,http://p/q.jpg')
    path = folder / "MovieGenre.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return path
