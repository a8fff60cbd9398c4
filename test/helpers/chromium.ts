import type { LaunchOptions } from 'playwright-core';

/**
 * How the browser tests start Debian's Chromium (/usr/bin/chromium) through playwright-core: headless,
 * no sandbox (root), and none of its background networking, which this machine's closed network
 * refuses (many connections at a time) and which would slow every start.
 */
export const CHROMIUM: LaunchOptions = {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};
