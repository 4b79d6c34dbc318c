"""Uploads become images the provider accepts, or are refused with the reason."""

from __future__ import annotations

import dataclasses
import io
import os

import pytest
from PIL import Image

from studio.dashscope.catalog import CATALOG, MB, ImageInputRule, megabytes
from studio.generation.normalise import (
    ImageRefused,
    NormalisedImage,
    normalise,
    refit,
    size_text,
)
from tests.support.emulation import make_image

WAN27 = CATALOG["wan2.7-image-pro"].images
WAN25 = CATALOG["wan2.5-i2i-preview"].images


def reopen(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def photo_with_orientation(orientation: int) -> bytes:
    # A 600x400 landscape sensor image with a red marker top-left, to be shown rotated.
    image = Image.new("RGB", (600, 400), (240, 240, 240))
    image.paste((255, 0, 0), (0, 0, 100, 100))
    exif = Image.Exif()
    exif[0x0112] = orientation
    output = io.BytesIO()
    image.save(output, format="JPEG", exif=exif.tobytes(), quality=95)
    return output.getvalue()


@pytest.mark.parametrize(("orientation", "marker_corner"), [(6, "top-right"), (8, "bottom-left")])
def test_exif_rotation_is_applied_so_boxes_are_drawn_on_what_people_see(orientation, marker_corner):
    result = normalise(photo_with_orientation(orientation), WAN27)
    assert (result.width, result.height) == (400, 600)
    assert "rotated as its camera recorded" in result.adjustments
    image = reopen(result.data).convert("RGB")
    x, y = (350, 50) if marker_corner == "top-right" else (50, 550)
    red, green, blue = image.getpixel((x, y))
    assert red > 200 and green < 60 and blue < 60
    assert reopen(result.data).getexif().get(0x0112) is None


def test_transparency_is_flattened_onto_white_and_said_so():
    image = Image.new("RGBA", (500, 500), (0, 0, 0, 0))
    image.paste((0, 0, 255, 255), (100, 100, 200, 200))
    output = io.BytesIO()
    image.save(output, format="PNG")
    result = normalise(output.getvalue(), WAN27)
    flat = reopen(result.data)
    assert flat.mode == "RGB" and result.format == "PNG"
    assert flat.getpixel((10, 10)) == (255, 255, 255)
    assert flat.getpixel((150, 150)) == (0, 0, 255)
    # The reason too: the designer did nothing wrong, the models take no transparency.
    assert result.adjustments == [
        "transparency flattened onto white. The models do not accept transparency"
    ]


def test_an_oversized_image_is_scaled_down_to_fit_and_said_so():
    result = normalise(make_image(6000, 3000, fmt="JPEG"), WAN25)
    assert (result.width, result.height) == (5000, 2500)
    assert result.adjustments == [
        "scaled down from 6000×3000 to 5000×2500, as sides may be at most 5000 pixels"
    ]


@pytest.mark.parametrize(
    ("size", "reason"),
    [
        ((239, 500), "at least 240 pixels"),
        ((240, 1921), "aspect ratio must be between 1:8 to 8:1"),
    ],
)
def test_what_cannot_be_fixed_is_refused_with_the_reason(size, reason):
    with pytest.raises(ImageRefused, match=reason):
        normalise(make_image(*size), WAN27)


def test_the_edge_of_every_limit_is_accepted():
    assert normalise(make_image(240, 1920), WAN27).height == 1920
    assert normalise(make_image(384, 1536), WAN25).width == 384


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"GIF89a" + b"\x00" * 100, "GIF files are not accepted"),
        (b"%PDF-1.7\n", "PDF files are not accepted"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "SVG files are not accepted"),
        (b"not an image at all", "not a JPEG, PNG, BMP or WEBP"),
        (b"", "empty"),
    ],
)
def test_files_that_are_not_accepted_images_are_refused_by_their_bytes(data, reason):
    with pytest.raises(ImageRefused, match=reason):
        normalise(data, WAN27)


def test_a_pixel_bomb_is_refused_from_its_header():
    # A valid PNG header claiming 20000x20000 pixels, with almost no data behind it.
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    with pytest.raises(ImageRefused, match=r"too many pixels|larger than 8000"):
        normalise(bomb, WAN27)


def test_nothing_of_the_upload_survives_but_its_pixels():
    polyglot = make_image(400, 400, fmt="PNG") + b"<script>alert(1)</script>"
    result = normalise(polyglot, WAN27)
    assert b"<script>" not in result.data
    assert result.data.endswith(b"IEND\xaeB`\x82")
    exif_photo = Image.new("RGB", (400, 400), (10, 10, 10))
    exif = Image.Exif()
    exif[0x010E] = "<img onerror=alert(1)>"  # ImageDescription
    output = io.BytesIO()
    exif_photo.save(output, format="JPEG", exif=exif.tobytes())
    cleaned = reopen(normalise(output.getvalue(), WAN27).data)
    assert dict(cleaned.getexif()) == {} and "icc_profile" not in cleaned.info


def test_a_jpeg_named_bmp_is_read_as_the_jpeg_it_is():
    result = normalise(make_image(500, 500, fmt="JPEG"), WAN27)
    assert result.format == "JPEG" and result.mime == "image/jpeg"


def test_cmyk_and_greyscale_become_rgb():
    for mode, said in (("CMYK", ["CMYK colours converted to RGB"]), ("L", [])):
        output = io.BytesIO()
        Image.new(mode, (300, 300)).save(output, format="JPEG")
        result = normalise(output.getvalue(), WAN27)
        assert reopen(result.data).mode == "RGB"
        assert result.adjustments == said  # grey in RGB is the same picture: nothing to say


def test_a_16_bit_greyscale_png_keeps_its_tones():
    import struct

    width, height = 400, 300
    # A left-to-right ramp from black to white, in 16 bits.
    row = b"".join(struct.pack(">H", x * 65535 // (width - 1)) for x in range(width))
    output = io.BytesIO()
    Image.frombytes("I;16B", (width, height), row * height).save(output, format="PNG")

    normalised = normalise(output.getvalue(), WAN27)
    assert normalised.adjustments == ["16-bit tones brought to 8 bits"]
    result = reopen(normalised.data)
    assert result.mode == "RGB"
    ramp = [result.getpixel((x, 150))[0] for x in (0, 100, 200, 300, 399)]
    assert ramp[0] == 0 and ramp[-1] == 255
    assert [round(v / 255, 1) for v in ramp[1:4]] == [0.3, 0.5, 0.8]


def test_a_camera_jpeg_holding_a_second_picture_is_read_as_its_photo():
    """Phones and cameras write a depth map or a second view into the JPEG (MPO)."""
    photo = Image.new("RGB", (800, 600), (200, 30, 30))
    depth = Image.new("RGB", (400, 300), (10, 10, 10))
    output = io.BytesIO()
    photo.save(output, format="MPO", save_all=True, append_images=[depth])
    assert reopen(output.getvalue()).format == "MPO"
    result = normalise(output.getvalue(), WAN27)
    assert (result.width, result.height) == (800, 600)
    assert reopen(result.data).format == "JPEG"
    assert reopen(result.data).convert("RGB").getpixel((400, 300))[0] > 150  # the photo


def test_scaling_down_never_pushes_an_image_out_of_the_aspect_range():
    """An image accepted at the edge of the range (1:8 here) is scaled down, for a side or a
    file size limit, without its rounded sides tipping it over the edge."""
    from studio.generation.normalise import _scaled

    for short in range(240, 1200, 7):
        size = (short, short * 8)
        for _ in range(4):  # the file size loop may scale several times
            size = _scaled(size, 0.85)
            assert WAN27.aspect.allows(*size), size
        assert WAN27.aspect.allows(*_scaled((short * 8, short), 8000 / (short * 8 + 1)))
    for side in range(5001, 8000, 37):  # a square stays square, within the largest side
        width, height = _scaled((side, side), 5000 / side)
        assert width == height <= 5000


# -- The designer's format is kept; a file over the byte limit is fitted lossless first ---


def noise(width: int, height: int) -> Image.Image:
    """A picture no compressor can shrink: its file size follows its pixel count."""
    return Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    output = io.BytesIO()
    image.save(output, format=fmt, **options)
    return output.getvalue()


def limited(max_bytes: int) -> ImageInputRule:
    """wan2.7's rule with a smaller byte limit, so that small pictures can be over it."""
    return dataclasses.replace(WAN27, max_bytes=max_bytes)


def same_pixels(data: bytes, image: Image.Image) -> bool:
    return reopen(data).convert("RGB").tobytes() == image.tobytes()


def a_note(result: NormalisedImage, start: str) -> str:
    (note,) = [note for note in result.adjustments if note.startswith(start)]
    return note


def test_a_30_mb_png_stays_png_for_wan27_scaled_by_the_least_that_fits_20_mb():
    picture = noise(3170, 3170)
    upload = encoded(picture, "PNG")
    assert 30 * MB < len(upload) < 31 * MB
    result = normalise(upload, WAN27)
    assert result.format == "PNG" and reopen(result.data).format == "PNG"
    # The least that fits: 20 MB of incompressible pixels is about 2580 pixels square.
    assert len(result.data) <= 20 * MB
    assert 2500 <= result.width == result.height < 2582
    assert result.adjustments == [
        f"scaled down from 3170×3170 to {result.width}×{result.height} to fit 20 MB and "
        f"stay PNG, without compression loss; 30.1 MB → {size_text(len(result.data))}"
    ]


@pytest.mark.parametrize(
    ("fmt", "options", "lossless"),
    [
        ("PNG", {}, True),
        ("WEBP", {"lossless": True}, True),
        ("WEBP", {"quality": 90}, False),
        ("JPEG", {"quality": 95}, False),
    ],
)
def test_a_file_that_fits_keeps_its_format_and_nothing_is_said(fmt, options, lossless):
    picture = noise(600, 400)
    result = normalise(encoded(picture, fmt, **options), WAN27)
    assert (result.format, reopen(result.data).format) == (fmt, fmt)
    assert result.mime == f"image/{fmt.lower()}" and result.extension in ("png", "webp", "jpg")
    assert (result.width, result.height) == (600, 400)
    assert result.adjustments == []
    if lossless:
        assert same_pixels(result.data, picture)


def test_a_15_mb_png_goes_to_wan27_with_every_pixel():
    picture = noise(2236, 2236)
    upload = encoded(picture, "PNG")
    assert 15 * MB < len(upload) < 16 * MB
    result = normalise(upload, WAN27)
    assert result.format == "PNG" and result.adjustments == []
    assert same_pixels(result.data, picture)


def test_a_bmp_becomes_png_with_the_same_pixels_and_says_so():
    """BMP is uncompressed and the studio serves no BMP: PNG keeps every pixel, smaller."""
    picture = Image.new("RGB", (1200, 800), (30, 90, 160))
    picture.paste((250, 250, 250), (100, 100, 600, 400))
    upload = encoded(picture, "BMP")
    result = normalise(upload, WAN27)
    assert result.format == "PNG" and same_pixels(result.data, picture)
    assert result.adjustments == [
        "saved as PNG: the same pixels, compressed without loss (BMP is not compressed at "
        f"all); 2.8 MB → {size_text(len(result.data))}"
    ]


def test_a_png_just_over_the_limit_is_compressed_harder_before_anything_is_scaled():
    # Smooth tones with a little grain: zlib's strongest level saves some percent here.
    ramp = Image.linear_gradient("L").resize((900, 900)).convert("RGB")
    picture = Image.blend(ramp, Image.effect_noise((900, 900), 20).convert("RGB"), 0.3)
    default, harder = encoded(picture, "PNG"), encoded(picture, "PNG", compress_level=9)
    assert len(harder) < len(default)
    rule = limited((len(default) + len(harder)) // 2)
    result = normalise(default, rule)
    assert result.format == "PNG" and same_pixels(result.data, picture)
    assert len(result.data) <= rule.max_bytes
    assert result.adjustments == [
        f"compressed harder to fit {megabytes(rule.max_bytes)}, not a pixel changed; "
        f"{size_text(len(default))} → {size_text(len(result.data))}"
    ]


def test_a_png_well_over_the_limit_is_scaled_down_and_stays_png():
    upload = encoded(noise(1000, 1000), "PNG")  # 3 MB
    result = normalise(upload, limited(2 * MB))
    assert result.format == "PNG"
    assert len(result.data) <= 2 * MB
    assert 780 <= result.width == result.height < 817  # about √(2/3) of each side
    assert a_note(result, "scaled down from 1000×1000 to ").endswith(
        f"to fit 2 MB and stay PNG, without compression loss; 3.0 MB → "
        f"{size_text(len(result.data))}"
    )


def test_jpeg_is_the_last_resort_for_a_png_that_would_lose_half_its_pixels():
    upload = encoded(noise(1000, 1000), "PNG")  # 3 MB: 1.2 MB would leave it 630 square
    result = normalise(upload, limited(1_200_000))
    assert result.format == "JPEG" and reopen(result.data).format == "JPEG"
    assert (result.width, result.height) == (1000, 1000)  # every pixel kept, lossy
    assert result.adjustments == [
        "saved as JPEG (quality 92), the last resort to fit 1 MB: to stay PNG it would "
        f"have lost over half its pixels; 3.0 MB → {size_text(len(result.data))}"
    ]


def test_a_lossless_webp_falls_back_to_lossy_webp_not_jpeg():
    upload = encoded(noise(1000, 1000), "WEBP", lossless=True)
    result = normalise(upload, limited(1_200_000))
    assert result.format == "WEBP" and reopen(result.data).format == "WEBP"
    assert result.adjustments == [
        "saved as lossy WEBP (quality 92), the last resort to fit 1 MB: to stay lossless it "
        f"would have lost over half its pixels; 3.0 MB → {size_text(len(result.data))}"
    ]


def test_a_jpeg_over_the_limit_is_saved_again_and_said_so_with_its_sizes():
    upload = encoded(noise(1000, 1000), "JPEG", quality=100)
    result = normalise(upload, limited(len(upload) * 3 // 4))
    assert result.format == "JPEG" and (result.width, result.height) == (1000, 1000)
    assert result.adjustments == [
        f"saved again as JPEG (quality 92), to fit 1 MB; {size_text(len(upload))} → "
        f"{size_text(len(result.data))}"
    ]


def test_a_jpeg_still_over_the_limit_at_quality_92_is_scaled_down_by_the_least_needed():
    upload = encoded(noise(1000, 1000), "JPEG", quality=100)
    at_92 = len(encoded(noise(1000, 1000), "JPEG", quality=92, optimize=True))
    rule = limited(at_92 * 2 // 3)
    result = normalise(upload, rule)
    assert result.format == "JPEG" and result.width < 1000
    # The least needed: a smoothed picture's JPEG shrinks faster than its pixels, so a first
    # guess lands well under the limit and is pushed back up towards it.
    assert 0.85 * rule.max_bytes < len(result.data) <= rule.max_bytes
    assert result.adjustments == [
        f"scaled down from 1000×1000 to {result.width}×{result.height} and saved as JPEG "
        f"(quality 92) to fit {megabytes(rule.max_bytes)}; {size_text(len(upload))} → "
        f"{size_text(len(result.data))}"
    ]


def test_sizes_are_cut_not_rounded_so_a_file_that_fits_never_reads_over_its_limit():
    assert size_text(19_999_999) == "19.9 MB"
    assert size_text(30_169_226) == "30.1 MB"
    assert size_text(54_321) == "54 KB"


def test_refitting_for_a_smaller_limit_keeps_the_format_and_every_note():
    staged = normalise(encoded(noise(1000, 1000), "BMP"), WAN27)
    assert staged.format == "PNG" and len(staged.adjustments) == 1
    fitted = refit(staged, limited(2 * MB))
    assert fitted.format == "PNG" and len(fitted.data) <= 2 * MB
    assert fitted.adjustments[0] == staged.adjustments[0]
    assert fitted.adjustments[1].startswith("scaled down from 1000×1000 to ")
    assert fitted.adjustments[1].endswith(f"3.0 MB → {size_text(len(fitted.data))}")
