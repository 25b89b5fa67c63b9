// Step 5's drawing canvas on the Learn page, mounted by app_pages/_learn_canvas.py through
// st.components.v2 (in the page's own DOM, in a shadow root: no iframe, no build step).
//
// Pointer events cover mouse, pen and touch (the canvas has touch-action: none). A stroke is drawn
// on a transparent bitmap of data.size pixels with a round pen of data.stroke pixels; when it ends
// (pointerup or pointercancel) the whole drawing goes to Python as a PNG data URL in the
// component state "drawing", where fgff_core.lesson.drawing_to_pixels down-samples it. Clear empties
// the canvas and sends null.
export default function (component) {
  const { parentElement, setStateValue, data } = component;
  const canvas = parentElement.querySelector("canvas");
  const clear = parentElement.querySelector("button");
  if (!canvas || !clear) return;
  // Streamlit calls this function again whenever the element re-renders: the newest setter is kept,
  // the listeners are attached once per canvas.
  canvas.fgffSend = (value) => setStateValue("drawing", value);
  if (canvas.dataset.ready === "1") return;
  canvas.dataset.ready = "1";

  const size = Number(data && data.size) || 280;
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext("2d");
  const pen = Number(data && data.stroke) || 32;
  let pointer = null; // the id of the pointer drawing now (one finger at a time)
  let last = null;

  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * size / r.width, (e.clientY - r.top) * size / r.height];
  };
  const line = (from, to) => {
    ctx.strokeStyle = ctx.fillStyle = getComputedStyle(canvas).color;
    ctx.lineWidth = pen;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
  };

  canvas.addEventListener("pointerdown", (e) => {
    if (pointer !== null || (e.pointerType === "mouse" && e.button !== 0)) return;
    e.preventDefault();
    pointer = e.pointerId;
    canvas.setPointerCapture(e.pointerId);
    last = at(e);
    line(last, last); // a tap is a dot
  });
  canvas.addEventListener("pointermove", (e) => {
    if (e.pointerId !== pointer) return;
    e.preventDefault();
    const coalesced = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    for (const ev of coalesced.length ? coalesced : [e]) {
      const p = at(ev);
      line(last, p);
      last = p;
    }
  });
  const end = (e) => {
    if (e.pointerId !== pointer) return;
    pointer = null;
    last = null;
    canvas.fgffSend(canvas.toDataURL("image/png"));
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  clear.addEventListener("click", () => {
    ctx.clearRect(0, 0, size, size);
    canvas.fgffSend(null);
  });
}
