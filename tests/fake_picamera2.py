"""A Picamera2 stand-in that behaves like the real one where ``hal.picam`` depends on it.

Each behaviour names the upstream code it follows: raspberrypi/picamera2 (picamera2/picamera2.py,
picamera2/controls.py, picamera2/request.py, commit 3e6dff09) and raspberrypi/libcamera
(src/libcamera/pipeline/rpi/common/pipeline_base.cpp, src/ipa/rpi/common/ipa_base.cpp,
commit 26bfadc6). The sensor modes and their crops are the Linux drivers' mode tables:
drivers/media/i2c/imx708.c ``supported_modes_10bit_no_hdr`` and imx219.c ``supported_modes``
(the same list ``rpicam-hello --list-cameras`` prints; the imx219's 8-bit twins are left out).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Rect = tuple[int, int, int, int]
Size = tuple[int, int]
Platform = Literal["vc4", "pisp"]  # Pi Zero 2 W / 3 / 4, and Pi 5


@dataclass(frozen=True)
class Mode:
    """One sensor readout mode: its output size and the sensor area it reads (crop_limits)."""

    size: Size
    crop: Rect
    bit_depth: int = 10


@dataclass(frozen=True)
class Sensor:
    model: str
    pixel_array: Size
    modes: tuple[Mode, ...]
    autofocus: bool


# Camera Module 3: 1536x864 is binned *and* cropped to the centre; 2304x1296 is the full field
# binned 2x2; 4608x2592 is full resolution (14 fps).
IMX708 = Sensor(
    "imx708",
    (4608, 2592),
    (
        Mode((1536, 864), (768, 432, 3072, 1728)),
        Mode((2304, 1296), (0, 0, 4608, 2592)),
        Mode((4608, 2592), (0, 0, 4608, 2592)),
    ),
    autofocus=True,
)
# Camera Module 2: 640x480 and 1920x1080 are centre crops; 1640x1232 is the full field binned.
IMX219 = Sensor(
    "imx219",
    (3280, 2464),
    (
        Mode((640, 480), (1000, 752, 1280, 960)),
        Mode((1640, 1232), (0, 0, 3280, 2464)),
        Mode((1920, 1080), (680, 692, 1920, 1080)),
        Mode((3280, 2464), (0, 0, 3280, 2464)),
    ),
    autofocus=False,
)

# ipa_base.cpp ipaControls / ipaAfControls / platformControls (names only; values are ranges).
_BASE_CONTROLS = (
    "AeEnable",
    "AeExposureMode",
    "AnalogueGain",
    "ExposureTime",
    "FrameDurationLimits",
    "NoiseReductionMode",
    "ScalerCrop",
)
_AF_CONTROLS = ("AfMode", "AfRange", "AfSpeed", "AfMetering", "AfTrigger", "LensPosition")
_ISP_MIN_CROP: Size = (32, 32)  # vc4.cpp asks the ISP for its smallest crop; about this


def pick_mode(sensor: Sensor, output_size: Size, bit_depth: int) -> Mode:
    """picamera2.py ``_make_libcamera_config`` ``score_mode``: the mode libcamera is told to use."""

    def score_format(desired: float, actual: float) -> float:
        score = desired - actual
        return -score / 4 if score < 0 else score * 2

    def score(mode: Mode) -> float:
        ar = output_size[0] / output_size[1]
        mode_ar = mode.size[0] / mode.size[1]
        total = score_format(output_size[0], mode.size[0])
        total += score_format(output_size[1], mode.size[1])
        total += 1500 * score_format(ar, mode_ar)
        return total + 500 * abs(bit_depth - mode.bit_depth)

    return min(sensor.modes, key=score)


def apply_scaler_crop(requested: Rect, mode: Mode) -> Rect:
    """pipeline_base.cpp ``CameraData::applyScalerCrop`` and ``scaleIspCrop``, for one output.

    The crop is moved into mode pixels, grown to the ISP's minimum, kept on its centre and
    pushed inside the mode's image; what comes back (the frame metadata's ScalerCrop) is that
    rectangle in sensor pixels. A zero-size crop becomes (0, 0, 1, 1): the top-left corner.
    """
    x, y, width, height = requested if requested[2] and requested[3] else (0, 0, 1, 1)
    ax, ay, aw, ah = mode.crop
    ow, oh = mode.size
    isp = ((x - ax) * ow // aw, (y - ay) * oh // ah, width * ow // aw, height * oh // ah)
    min_w = max(_ISP_MIN_CROP[0], _ISP_MIN_CROP[1] * width // height)
    min_h = max(_ISP_MIN_CROP[1], _ISP_MIN_CROP[0] * height // width)
    size_w, size_h = max(isp[2], min_w), max(isp[3], min_h)
    centre_x, centre_y = isp[0] + isp[2] // 2, isp[1] + isp[3] // 2
    left = min(max(centre_x - size_w // 2, 0), ow - size_w)
    top = min(max(centre_y - size_h // 2, 0), oh - size_h)
    return (ax + left * aw // ow, ay + top * ah // oh, size_w * aw // ow, size_h * ah // oh)


def _default_crop(mode: Mode, output: Size) -> Rect:
    """vc4.cpp / pisp.cpp platformConfigure: the mode's image cut to the output's aspect ratio."""
    ax, ay, aw, ah = mode.crop
    width = min(aw, ah * output[0] // output[1])
    height = min(ah, aw * output[1] // output[0])
    return (ax + (aw - width) // 2, ay + (ah - height) // 2, width, height)


class FakePicamera2:
    """Picamera2 for one sensor on one platform, with a queue of frames to hand out."""

    def __init__(self, sensor: Sensor, platform: Platform) -> None:
        self.sensor = sensor
        self.platform = platform
        self.mode: Mode | None = None
        self.camera_config: dict[str, Any] = {}
        self.controls: dict[str, Any] = {}
        self.started = False
        self.closed = False
        self.stride = 704  # libcamera pads rows; wider than a 640-pixel frame
        self.frames: list[np.ndarray[Any, np.dtype[np.uint8]]] = []
        self.started_with: dict[str, Any] = {}
        self._cancelled = threading.Event()
        # _initialize_camera: properties straight from libcamera. registerCamera sets
        # ScalerCropMaximum to Rectangle{} because "it's not meaningful until a camera mode
        # has been chosen"; configure() replaces it with the mode's analogue crop.
        self._properties: dict[str, Any] = {
            "Model": sensor.model,
            "PixelArraySize": sensor.pixel_array,
            "ScalerCropMaximum": (0, 0, 0, 0),
        }
        self._control_names = self._controls_before_configure()

    # --- what the adapter reads --------------------------------------------------------------

    @property
    def camera_properties(self) -> dict[str, Any]:
        return dict(self._properties)

    @property
    def camera_controls(self) -> dict[str, tuple[Any, Any, Any]]:
        full = (0, 0, *self.sensor.pixel_array)
        controls: dict[str, tuple[Any, Any, Any]] = dict.fromkeys(self._control_names, (0, 1, 0))
        controls["FrameDurationLimits"] = (33_333, 1_000_000, 33_333)
        if self.mode is None:  # ipa_base.cpp: ControlInfo(Rectangle{}, Rectangle(65535...))
            controls["ScalerCrop"] = ((0, 0, 0, 0), (65535, 65535, 65535, 65535), (0, 0, 0, 0))
        else:  # pipeline_base.cpp configure(): ControlInfo(ispMinCrop, analogCrop, ispCrop)
            default = _default_crop(self.mode, self.camera_config["main"]["size"])
            controls["ScalerCrop"] = ((0, 0, *_ISP_MIN_CROP), self.mode.crop, default)
        if "ScalerCrops" in controls:  # min: stream 0's default crop, max: stream 1's
            default = controls["ScalerCrop"][2] if self.mode is not None else full
            controls["ScalerCrops"] = (default, default, default)
        return controls

    def camera_configuration(self) -> dict[str, Any]:
        return self.camera_config

    # --- configuration -----------------------------------------------------------------------

    def create_video_configuration(
        self,
        main: dict[str, Any] | None = None,
        lores: dict[str, Any] | None = None,
        raw: dict[str, Any] | None = None,
        controls: dict[str, Any] | None = None,
        sensor: dict[str, Any] | None = None,
        **rest: Any,
    ) -> dict[str, Any]:
        """picamera2.py ``create_video_configuration``: raw defaults to {} (a raw stream)."""
        assert not rest, f"not modelled: {sorted(rest)}"
        main = {"format": "XBGR8888", "size": (1280, 720), "preserve_ar": True} | (main or {})
        if lores is not None:
            lores = {"format": "YUV420", "size": main["size"], "preserve_ar": False} | lores
        raw = {"size": main["size"]} | ({} if raw is None else raw)
        return {
            "main": main,
            "lores": lores,
            "raw": raw,
            "controls": controls or {},
            "sensor": sensor or {},
        }

    def configure(self, config: dict[str, Any]) -> None:
        """picamera2.py ``configure_``, with what libcamera does on the way."""
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        if set(config["sensor"]) - {"bit_depth", "output_size"}:  # check_camera_config
            raise RuntimeError(f"Unexpected keys in sensor configuration: {config['sensor']}")
        lores = config["lores"]
        if lores is not None and (
            lores["size"][0] > config["main"]["size"][0]
            or lores["size"][1] > config["main"]["size"][1]
        ):
            raise RuntimeError("lores stream dimensions may not exceed main stream")
        # _make_libcamera_config: sensor output_size first, else the raw stream's, else main's.
        output_size = config["sensor"].get("output_size") or config["raw"]["size"]
        bit_depth = config["sensor"].get("bit_depth") or 10
        self.mode = pick_mode(self.sensor, tuple(output_size), bit_depth)
        outputs = 1 if lores is None else 2
        self.camera_config = {
            "main": dict(config["main"]) | {"stride": self.stride},
            "lores": None if lores is None else dict(lores),
            "sensor": {"bit_depth": self.mode.bit_depth, "output_size": self.mode.size},
        }
        # pipeline_base.cpp configure(): the mode's analogue crop becomes ScalerCropMaximum,
        # and rpi::ScalerCrops is only advertised when there are two ISP outputs.
        self._properties["ScalerCropMaximum"] = self.mode.crop
        self._control_names = self._controls_after_configure(outputs)
        # Controls(self, controls=...): an unknown name raises RuntimeError.
        self.controls = {}
        self.set_controls(config["controls"])
        if "ScalerCrops" in self._control_names:
            # configure_ then overwrites ScalerCrops with the default crops ("par_crop").
            default = self.camera_controls["ScalerCrop"][2]
            self.set_controls({"ScalerCrops": [default] * outputs})

    def set_controls(self, controls: dict[str, Any]) -> None:
        """controls.py ``Controls.__setattr__``: only names libcamera advertises."""
        for name, value in controls.items():
            if name not in self._control_names:
                raise RuntimeError(f"Control {name} is not advertised by libcamera")
            self.controls[name] = value

    def _controls_before_configure(self) -> set[str]:
        names = set(_BASE_CONTROLS)
        if self.sensor.autofocus:
            names |= set(_AF_CONTROLS)
        if self.platform == "pisp":  # ipa_base.cpp platformControls{"pisp": ScalerCrops}
            names.add("ScalerCrops")
        return names

    def _controls_after_configure(self, outputs: int) -> set[str]:
        names = self._controls_before_configure() - {"ScalerCrops"}
        if self.platform == "pisp" and outputs == 2:
            names.add("ScalerCrops")
        return names

    # --- running -----------------------------------------------------------------------------

    def start(self) -> None:
        if not self.camera_config:
            raise RuntimeError("Camera has not been configured")
        self.started_with = dict(self.controls)
        self.started = True

    def effective_crop(self) -> Rect:
        """The ScalerCrop a captured frame's metadata reports (applyScalerCrop at start)."""
        assert self.mode is not None and self.started
        crops = self.started_with.get("ScalerCrops")  # rpi::ScalerCrops wins over ScalerCrop
        if crops:
            return apply_scaler_crop(tuple(crops[0]), self.mode)
        if "ScalerCrop" in self.started_with:
            return apply_scaler_crop(tuple(self.started_with["ScalerCrop"]), self.mode)
        return _default_crop(self.mode, self.camera_config["main"]["size"])

    def capture_array(self, name: str = "main") -> np.ndarray[Any, np.dtype[np.uint8]]:
        """request.py: a YUV420 stream comes back as (height * 3 / 2) x stride bytes."""
        config = self.camera_config.get(name)
        if config is None:
            raise RuntimeError(f"Stream {name!r} is not defined")
        if self.frames:
            frame = self.frames.pop(0)
            height = config["size"][1]
            assert frame.shape == (height * 3 // 2, self.stride)
            return frame
        self._cancelled.wait()  # like a real camera between frames, until cancelled
        raise RuntimeError("job cancelled")

    def capture_metadata(self) -> dict[str, Any]:
        return {"ScalerCrop": self.effective_crop()}

    def cancel_all_and_flush(self) -> None:
        self._cancelled.set()

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.stop()
        self.closed = True


class FakeCameraManager:
    """picamera2.py ``Picamera2.__init__``: ``global_camera_info()[camera_num]['Num']``.

    With no camera attached the list is empty, so opening camera 0 raises IndexError before
    any of picamera2's own RuntimeError wrapping runs.
    """

    def __init__(self, *cameras: FakePicamera2) -> None:
        self.cameras = list(cameras)
        self.opened: list[FakePicamera2] = []

    def Picamera2(self, camera_num: int = 0) -> FakePicamera2:  # noqa: N802 - picamera2's name
        camera = self.cameras[camera_num]  # IndexError: list index out of range
        self.opened.append(camera)
        return camera
