"""Two models compared by content: what each archive holds (content), its network as a graph outline
(network), and the diff between two of them with the SemVer bump each change needs (diff). Below render/
and release/, which both show or act on a diff."""
