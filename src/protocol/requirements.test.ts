import { describe, expect, it } from 'vitest';
import { imageLine, normalise, parseRequirement, parseRequirementsTxt } from './requirements.js';

describe('the #nsml: line', () => {
  it.each([
    ['#nsml: nsml/ml:cuda9.0-cudnn7-tf-1.11torch1.0keras2.2\nfrom setuptools import setup', 'nsml/ml:cuda9.0-cudnn7-tf-1.11torch1.0keras2.2'],
    ['# nsml: nvcr.io/nvidia/pytorch:19.06-py3\r\n', 'nvcr.io/nvidia/pytorch:19.06-py3'],
    ['  #NSML:   nsml/default_ml:latest  ', 'nsml/default_ml:latest'],
    ['import os\n#nsml: late/line', null],
    ['# a comment', null],
  ])('reads %j', (text, image) => expect(imageLine(text)).toBe(image));
});

describe('requirements.txt', () => {
  it('reads pip’s syntax: comments, continuations, includes, markers, extras, URLs; index options are left to the organiser', () => {
    const parsed = parseRequirementsTxt(
      '#nsml: nsml/ml\n# comment\nTorch >= 1.13  # pinned\nscikit_learn==1.0 ; python_version < "3.12"\nrequests[socks]==2.31\n' +
        'efficientnet_pytorch \\\n  ==0.7.1\n-r more.txt\n--index-url https://example.org/simple\n-e .\nmypkg @ https://example.org/mypkg-1.0.whl\nnot a requirement!\n',
    );
    expect(parsed.requirements.map((r) => r.text)).toEqual([
      'torch>=1.13', 'scikit-learn==1.0 ; python_version < "3.12"', 'requests[socks]==2.31', 'efficientnet-pytorch==0.7.1', 'mypkg @ https://example.org/mypkg-1.0.whl',
    ]);
    expect(parsed.includes).toEqual(['more.txt']);
    expect(parsed.ignored).toEqual([
      "--index-url https://example.org/simple: the server's index is the organiser's to choose",
      '-e .: not a requirement khd installs (editable installs and constraints are not supported)',
      'not a requirement!: not a requirement pip would read',
    ]);
  });

  it('normalises names and order, so the same needs make the same layer', () => {
    const a = normalise(['Pillow==9.0', 'numpy', 'pillow==9.0'].map((t) => parseRequirement(t)!));
    const b = normalise(['numpy', 'PILLOW == 9.0'].map((t) => parseRequirement(t)!));
    expect(a).toEqual(b);
    expect(a.map((r) => r.text)).toEqual(['numpy', 'pillow==9.0']);
  });
});
