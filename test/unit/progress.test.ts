import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { ImageProgress } from '../../src/cli/progress.js';

const sink = () => {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += chunk;
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  return { stream, text: () => text };
};

describe('ImageProgress', () => {
  it('rewrites one line with the step and elapsed time on a terminal', () => {
    const out = sink();
    const progress = new ImageProgress(out.stream, true);
    progress.start('template claude');
    progress.event({ stream: 'Step 2/6 : RUN npm install -g x\n' });
    progress.end(true);
    assert.ok(
      out.text().includes('\r\x1b[2Ksbx: building template claude 0s  Step 2/6 : RUN npm install -g x'),
      out.text(),
    );
    assert.match(out.text(), /sbx: built template claude in 0s\n$/);
  });

  it("prints plain lines otherwise, and the failing step's output on failure", () => {
    const out = sink();
    const progress = new ImageProgress(out.stream, false);
    progress.start('template broken');
    progress.event({ stream: 'Step 1/2 : FROM sbx/base\n' });
    progress.event({ stream: ' ---> abc\nStep 2/2 : RUN make\n' });
    progress.event({ stream: 'compiling\nerror: no rule\n' });
    progress.end(false);
    assert.equal(
      out.text(),
      'sbx: building template broken\nsbx:   Step 1/2 : FROM sbx/base\nsbx:   Step 2/2 : RUN make\n' +
        'sbx: building template broken failed after 0s at Step 2/2 : RUN make\n  | compiling\n  | error: no rule\n',
    );
  });
});
