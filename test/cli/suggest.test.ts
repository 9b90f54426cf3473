import { expect } from 'chai';
import { didYouMean, editDistance, suggestion } from '../../lib/cli/suggest';

describe('cli: did you mean', () => {
  it('edit distance counts a swap of neighbours as one edit', () => {
    expect(editDistance('hnut', 'hunt')).to.equal(1);
    expect(editDistance('hunt', 'hunt')).to.equal(0);
    expect(editDistance('--iteration', '--iterations')).to.equal(1);
    expect(editDistance('kitten', 'sitting')).to.equal(3);
    expect(editDistance('', 'abc')).to.equal(3);
  });

  const COMMANDS = ['hunt', 'replay', 'list', 'merge', 'shrink', 'report', 'trace'];
  const OPTIONS = ['--iterations', '--seed', '--strategy', '--workers', '--shard', '--json', '--trace'];

  it('suggests the command, option, id or variant meant', () => {
    expect(didYouMean('hnut', COMMANDS)).to.equal('hunt');
    expect(didYouMean('repaly', COMMANDS)).to.equal('replay');
    expect(didYouMean('--iteration', OPTIONS)).to.equal('--iterations');
    expect(didYouMean('--stratgey', OPTIONS)).to.equal('--strategy');
    expect(didYouMean('s3', ['S1', 'S2', 'S3', 'abba'])).to.equal('S3');
    expect(didYouMean('fixd', ['buggy', 'fixed', 'nvme'])).to.equal('fixed');
    expect(suggestion('hnut', COMMANDS)).to.equal(' (did you mean hunt?)');
  });

  it('says nothing when no word is close, when two tie, or for an exact word', () => {
    expect(didYouMean('frobnicate', COMMANDS)).to.equal(null);
    expect(didYouMean('S', ['S1', 'S2'])).to.equal(null);
    expect(didYouMean('hunt', COMMANDS)).to.equal(null);
    expect(suggestion('zzzz', COMMANDS)).to.equal('');
  });

  it('takes a unique prefix', () => {
    expect(didYouMean('--work', OPTIONS)).to.equal('--workers');
    expect(didYouMean('re', COMMANDS)).to.equal(null); // replay and report
  });
});
