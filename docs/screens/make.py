"""Screenshots of the page's main states for the README, taken in Debian's headless Chromium.

    python docs/screens/make.py [--out docs/screens]

Starts `slarules serve` with a token file on a free loopback port (tests/serving.py), drives the
page as a claims officer would (tests/browser.py: the same browser and flags as the tests) and
saves one PNG per state. The screenshots show Chinese only where the machine has a CJK font
(Debian: fonts-wqy-microhei or fonts-noto-cjk); the script says so when it finds none.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

TOKEN = "screenshots-token-0123456789"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screens")
    args = parser.parse_args()
    import browser as chromium
    from selenium.webdriver.support.ui import Select
    from serving import Server
    why = chromium.missing()
    if why:
        print(f"make.py: {why}", file=sys.stderr)
        return 2
    if shutil.which("fc-list") and not subprocess.run(["fc-list", ":lang=zh"], capture_output=True,
                                                      text=True, check=False).stdout.strip():
        print("make.py: no Chinese font here: the zh screenshots would show boxes (apt-get install "
              "fonts-wqy-microhei)", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="slarules-screens-"))
    (folder / "tokens").write_text(f"{TOKEN}\n")
    try:
        with Server("--token-file", str(folder / "tokens")) as server, \
                chromium.Browser(size=(1360, 900)) as b:
            d = b.driver
            origin = f"http://{server.host}:{server.port}"

            def shoot(name: str, full: bool = True) -> None:
                target = args.out / f"{name}.png"
                b.screenshot(target) if full else d.save_screenshot(str(target))
                print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)

            def ready() -> None:
                b.wait(lambda drv: drv.execute_script("return document.body.dataset.ready === 'true'"))

            def decide(example: str) -> None:
                Select(b.find("#example")).select_by_value(example)
                b.find("#adjudicate").click()
                b.visible("#result")
                b.wait(lambda drv: not b.find("#busy").is_displayed())

            d.get(f"{origin}/")
            b.visible("input[name=token]")
            shoot("token", full=False)
            d.get(f"{origin}/?token={TOKEN}")
            ready()
            decide("tb4-unsigned-sender-lost")
            shoot("verdict")
            b.find("#explain").click()
            b.visible("#explanation")
            b.wait(lambda drv: not b.find("#busy").is_displayed())
            d.execute_script("window.scrollTo(0, document.getElementById('explanation').offsetTop - 10)")
            shoot("explanation", full=False)
            text = (ROOT / "examples" / "cases" / "tb4-unsigned-sender-lost.yaml").read_text(encoding="utf-8")
            d.execute_script("const a = document.getElementById('case'); a.value = arguments[0];"
                             "a.dispatchEvent(new Event('input'));", text.replace("weight_kg: 8.5", "weight_kg: -3"))
            d.execute_script("window.scrollTo(0, 0)")
            b.find("#adjudicate").click()
            b.visible("#marker")
            d.execute_script("window.scrollTo(0, 0)")
            shoot("error")
            b.find("[data-lang=en]").click()
            decide("nr4-total-delay")
            shoot("english")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
