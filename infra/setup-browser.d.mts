/** Types of setup-browser.mjs (plain JavaScript: the set-up runs before anything is built). */
export function chromiumPath(env?: Record<string, string | undefined>): string;
export function setupBrowser(say: (message: string) => void): string | undefined;
