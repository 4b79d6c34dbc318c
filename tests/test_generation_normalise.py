"""Uploads become images the provider accepts, or are refused with the reason."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from studio.dashscope.catalog import CATALOG
from studio.generation.normalise import ImageRefused, normalise
from tests.emulation import make_image

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
    assert "transparency flattened onto white" in result.adjustments


def test_an_oversized_image_is_scaled_down_to_fit_and_said_so():
    result = normalise(make_image(6000, 3000, fmt="JPEG"), WAN25)
    assert (result.width, result.height) == (5000, 2500)
    assert "scaled down from 6000×3000 to 5000×2500" in result.adjustments


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
    for mode in ("CMYK", "L"):
        output = io.BytesIO()
        Image.new(mode, (300, 300)).save(output, format="JPEG")
        assert reopen(normalise(output.getvalue(), WAN27).data).mode == "RGB"


def test_a_16_bit_greyscale_png_keeps_its_tones():
    import struct

    width, height = 400, 300
    # A left-to-right ramp from black to white, in 16 bits.
    row = b"".join(struct.pack(">H", x * 65535 // (width - 1)) for x in range(width))
    output = io.BytesIO()
    Image.frombytes("I;16B", (width, height), row * height).save(output, format="PNG")

    result = reopen(normalise(output.getvalue(), WAN27).data)
    assert result.mode == "RGB"
    ramp = [result.getpixel((x, 150))[0] for x in (0, 100, 200, 300, 399)]
    assert ramp[0] == 0 and ramp[-1] == 255
    assert [round(v / 255, 1) for v in ramp[1:4]] == [0.3, 0.5, 0.8]


def test_an_image_over_the_file_size_limit_is_recompressed_to_fit():
    noisy = Image.effect_noise((3000, 3000), 120).convert("RGB")
    output = io.BytesIO()
    noisy.save(output, format="PNG")
    assert len(output.getvalue()) > WAN25.max_bytes
    result = normalise(output.getvalue(), WAN25)
    assert len(result.data) <= WAN25.max_bytes
    assert result.format == "JPEG"
    assert "saved as JPEG to fit the file size limit" in result.adjustments


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
