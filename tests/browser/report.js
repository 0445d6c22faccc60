// Reads a backtest's report.html in headless Chromium as a user would: moves the pointer over the equity chart
// and over a token's price and sentiment charts and records what the hover shows, and what the per-token
// picture holds (its markers and their details). The report test (tests/it/report_browser.rs) runs it.
//
// env: CHROMIUM, REPORT (path of report.html). stdout: one JSON object.
"use strict";
const puppeteer = require("puppeteer-core");

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};

// the hover text after moving to `fraction` of the plot's width on the chart labelled `label`
async function hover(page, label, fraction) {
  const svg = await page.$(`svg.hf-chart[aria-label="${label}"]`);
  if (!svg) throw new Error(`no chart labelled ${label}`);
  await svg.scrollIntoView();
  const box = await svg.boundingBox();
  const d = await svg.evaluate((s) => JSON.parse(s.getAttribute("data-hover")));
  const x = box.x + (d.x0 + fraction * (d.x1 - d.x0)) / d.w * box.width;
  await page.mouse.move(x, box.y + box.height / 2);
  return svg.evaluate((s) => {
    const g = s.querySelector("g.hf-hover");
    return g && g.style.display !== "none" ? g.querySelector("text").textContent : null;
  });
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: env("CHROMIUM"), headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const errors = [];
  try {
    const page = await browser.newPage();
    await page.setViewport({width: 1200, height: 900});
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    await page.goto("file://" + env("REPORT"), {waitUntil: "load"});
    const token = await page.$eval("h3[id^=token-]", (h) => h.id.slice("token-".length));
    const out = {
      errors,
      charts: await page.$$eval("svg.hf-chart", (l) => l.length),
      equity_hover: await hover(page, "equity curve", 0.5),
      token,
      token_heading: await page.$eval(`h3[id="token-${token}"]`, (h) => h.textContent),
      price_hover: await hover(page, `${token} price`, 0.25),
      sentiment_hover: await hover(page, `${token} sentiment score`, 0.25),
      entries: await page.$$eval(`svg[aria-label="${token} price"] path.entry title`, (l) => l.map((t) => t.textContent)),
      exits: await page.$$eval(`svg[aria-label="${token} price"] path.exit title`, (l) => l.map((t) => t.textContent)),
      stops: await page.$$eval(`svg[aria-label="${token} price"] line.stop`, (l) => l.length),
    };
    // leaving the chart hides the values again
    await page.mouse.move(1, 1);
    out.hidden_after = await page.$eval(`svg.hf-chart[aria-label="equity curve"] g.hf-hover`, (g) => g.style.display);
    process.stdout.write(JSON.stringify(out));
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
