// Types for msgpackr's no-eval build (the same API as the main entry; it never calls eval/new Function,
// which Cloudflare Workers forbid).
declare module 'msgpackr/index-no-eval' {
  export * from 'msgpackr';
}
