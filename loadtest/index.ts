// volley/loadtest: what a bot script imports. The command itself is `volley-loadtest`.
export { defineBots, type Bot, type BotScript, type BotHandlers } from './bots.ts';
export type { Report } from './report.ts';
