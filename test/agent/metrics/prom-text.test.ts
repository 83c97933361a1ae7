// The test-side Prometheus text parser refuses what the exposition format does not allow (else the scrape tests could not fail).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePrometheusText, sampleValue } from './prom-text.js';

test('parses families, labels with escapes and histograms', () => {
  const f = parsePrometheusText([
    '# HELP a_total A counter.', '# TYPE a_total counter', 'a_total{x="1",y="q\\"\\\\\\n"} 3', 'a_total{x="2"} 4.5e1',
    '# TYPE h histogram', 'h_bucket{le="0.1"} 1', 'h_bucket{le="+Inf"} 2', 'h_sum 0.3', 'h_count 2', '',
  ].join('\n'));
  assert.equal(f.get('a_total')!.type, 'counter');
  assert.equal(sampleValue(f, 'a_total', { y: 'q"\\\n' }), 3);
  assert.equal(sampleValue(f, 'a_total', { x: '2' }), 45);
  assert.equal(f.get('h')!.samples.length, 4);
});

test('refuses malformed expositions', () => {
  for (const bad of ['a{x=1} 2\n', 'a{x="1" 2\n', 'a 1 2 3\n', 'a x\n', '1a 2\n', 'a{x="1",x="2"} 1\n', '# TYPE a counterish\n',
    '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\n', '# TYPE h histogram\nh_bucket{le="1"} 2\n', 'a 1']) {
    assert.throws(() => parsePrometheusText(bad), Error, JSON.stringify(bad));
  }
});
