// Drives the executor's dashboard in headless Chromium as a user with a browser wallet would (the wallet
// approval test in tests/it/wallet_browser.rs runs it). The wallet is an EIP-1193 provider injected before the
// page loads: it starts on chain 1 (so the page has to switch it), answers eth_requestAccounts with the account
// the test chooses, refuses a request when told to (as a user pressing "Reject" in MetaMask), and forwards
// everything else to the local anvil, whose unlocked test account signs.
//
// env: CHROMIUM, URL (dashboard), RPC (anvil), ACCOUNT (the configured one), WRONG (another account).
// stdout: one JSON object with what the page showed and did.
"use strict";
const puppeteer = require("puppeteer-core");

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};

function wallet(cfg) {
  let chainId = "0x1";
  window.__account = cfg.wrong;
  window.__refuseNext = false;
  window.__calls = [];
  const rpc = async (method, params) => {
    const r = await fetch(cfg.rpc, {method: "POST", headers: {"content-type": "application/json"},
      body: JSON.stringify({jsonrpc: "2.0", id: 1, method, params})});
    const j = await r.json();
    if (j.error) { const e = new Error(j.error.message); e.code = j.error.code; throw e; }
    return j.result;
  };
  const fail = (code, message) => { const e = new Error(message); e.code = code; throw e; };
  window.ethereum = {
    async request({method, params}) {
      window.__calls.push(method);
      switch (method) {
        case "eth_requestAccounts":
        case "eth_accounts":
          return [window.__account];
        case "eth_chainId":
          return chainId;
        case "wallet_switchEthereumChain": {
          const want = String(params[0].chainId).toLowerCase();
          if (want !== String(await rpc("eth_chainId", [])).toLowerCase()) fail(4902, "Unrecognized chain ID");
          chainId = want;
          return null;
        }
        case "eth_sendTransaction": {
          if (chainId !== String(await rpc("eth_chainId", [])).toLowerCase()) fail(4901, "the wallet is on another chain");
          if (window.__refuseNext) { window.__refuseNext = false; fail(4001, "User rejected the request."); }
          const tx = params[0];
          if (String(tx.from).toLowerCase() !== window.__account.toLowerCase()) fail(4100, "unknown account");
          return rpc("eth_sendTransaction", [tx]);
        }
        default:
          return rpc(method, params || []);
      }
    },
    on() {}, removeListener() {},
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const out = {steps: []};
  const browser = await puppeteer.launch({
    executablePath: env("CHROMIUM"), headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage();
    page.on("pageerror", (e) => out.steps.push(`page error: ${e.message}`));
    await page.evaluateOnNewDocument(wallet, {rpc: env("RPC"), wrong: env("WRONG")});
    await page.goto(env("URL"), {waitUntil: "domcontentloaded"});
    await page.waitForFunction(() => !document.getElementById("approvals").hidden, {timeout: 30000});
    const msg = () => page.$eval("#approval-msg", (e) => e.textContent);
    const offerOpen = (id) => page.waitForSelector(`button.approve[data-id="${id}"]:not([disabled])`, {timeout: 60000});
    const offerGone = (id) => page.waitForFunction((id) => !document.querySelector(`.offer[data-id="${id}"]`), {timeout: 60000}, id);

    // a wrong account is refused by the page, and by the server if asked directly
    await page.click("#connect");
    await page.waitForFunction(() => document.getElementById("approval-msg").textContent.includes("refused"));
    out.wrong_account_message = await msg();
    out.connected_with_wrong = await page.$eval("#wallet", (e) => e.textContent);

    await page.evaluate((a) => { window.__account = a; }, env("ACCOUNT"));
    await page.click("#connect");
    await page.waitForFunction(() => document.getElementById("wallet").textContent.startsWith("connected"));

    // intent 1: its allowance, then the swap, both approved; each shown before the click
    await offerOpen("buy-1:allowance");
    out.allowance_shown = await page.$eval('.offer[data-id="buy-1:allowance"]', (e) => e.innerText);
    await page.click('button.approve[data-id="buy-1:allowance"]');
    await offerOpen("buy-1");
    out.swap_shown = await page.$eval('.offer[data-id="buy-1"]', (e) => e.innerText);
    await page.click('button.approve[data-id="buy-1"]');
    await page.waitForFunction(() => /buy-1: sent 0x[0-9a-f]{64}/.test(document.getElementById("approval-msg").textContent), {timeout: 60000});
    out.sent_message = await msg();
    out.swap_hash = out.sent_message.match(/0x[0-9a-f]{64}/)[0];

    // intent 2: its allowance approved, the swap refused in the wallet
    await offerOpen("buy-2:allowance");
    await page.click('button.approve[data-id="buy-2:allowance"]');
    await offerOpen("buy-2");
    await page.evaluate(() => { window.__refuseNext = true; });
    await page.click('button.approve[data-id="buy-2"]');
    await offerGone("buy-2");
    out.refused_message = await msg();

    // intent 3 (its allowance left over from intent 2): never answered; a wrong account cannot claim it
    // meanwhile, and once expired it cannot be claimed at all
    await page.waitForSelector('.offer[data-id="buy-3"]', {timeout: 60000});
    out.intent3_had_allowance_offer = await page.evaluate(() => !!document.querySelector('.offer[data-id="buy-3:allowance"]'));
    const claim = (account) => page.evaluate(async (account) => {
      const r = await fetch("/api/approvals/buy-3/claim", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({account})});
      return {status: r.status, text: await r.text()};
    }, account);
    out.server_wrong_account = await claim(env("WRONG"));
    await offerGone("buy-3");
    out.late_claim = await claim(env("ACCOUNT"));
    out.wallet_calls = await page.evaluate(() => window.__calls);
  } catch (e) {
    const pages = await browser.pages();
    const p = pages[pages.length - 1];
    const html = p ? await p.evaluate(() => document.getElementById("approvals").outerHTML + JSON.stringify(window.__calls)).catch((x) => String(x)) : "";
    console.error(`page at the failure: ${html}\nsteps: ${JSON.stringify(out.steps)}`);
    throw e;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
